"""Gradients of NumPy code on Dask arrays (srcdiff/arrays.py, docs/dask.md).

One ``LocalCluster`` with two worker processes (one thread each) serves the
module; the tests that only check what a call returns or raises use Dask's
local threaded scheduler.  Chunk loads are counted with a loader that appends
a line to a file per chunk it makes (worker processes share the file).
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

import srcdiff  # noqa: E402
from srcdiff import optim  # noqa: E402

TOL = dict(rtol=1e-12, atol=1e-12)


# -- the model workloads -------------------------------------------------------------------


def logistic(w, b, X, y):
    z = X @ w + b
    return np.mean(np.logaddexp(0.0, z) - y * z)


def linear(w, b, X, y):
    r = X @ w + b - y
    return 0.5 * np.sum(r**2) / X.shape[0]


def mlp(W1, b1, W2, b2, X, y):
    h = np.tanh(X @ W1 + b1)
    out = h @ W2 + b2
    return np.mean((out - y) ** 2)


def thresholded(w, X):
    s = np.sum(X @ w)
    if s > 0:  # control flow on a value of the data: computes that value only
        return 2.0 * s
    return s


def sorted_loss(w, X):
    z = X @ w
    return np.sum(np.sort(z)[-10:])


def scattered(w, X, idx):
    out = np.zeros(3)
    np.add.at(out, idx, X @ w)
    return np.sum(out ** 2)


# -- data ----------------------------------------------------------------------------------

N, D, CHUNK = 2000, 5, 250


def _block(i: int, rows: int, d: int = D):
    rng = np.random.default_rng([7, i])
    X = rng.normal(size=(rows, d))
    y = (rng.random(rows) < 1.0 / (1.0 + np.exp(-X[:, 0] + 0.5 * X[:, 1]))).astype(float)
    return X, y


def counted_data(logfile: str, n: int = N, chunk: int = CHUNK, delay: float = 0.0):
    """(X, y) as Dask arrays made chunk by chunk by a loader that logs each
    load of X to ``logfile``; and the same data in NumPy."""
    rows = (chunk,) * (n // chunk)

    def load_x(block_info=None):  # pickled by value (a closure): workers need no test module
        i = block_info[None]["chunk-location"][0]
        with open(logfile, "a") as f:
            f.write(f"{i}\n")
        if delay:
            time.sleep(delay)
        return _block(i, chunk)[0]

    def load_y(block_info=None):
        return _block(block_info[None]["chunk-location"][0], chunk)[1]

    X = da.map_blocks(load_x, chunks=(rows, (D,)), dtype=float, meta=np.empty((0, 0)))
    y = da.map_blocks(load_y, chunks=(rows,), dtype=float, meta=np.empty((0,)))
    blocks = [_block(i, chunk) for i in range(len(rows))]
    return X, y, np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks])


def loads(logfile: str) -> int:
    if not os.path.exists(logfile):
        return 0
    with open(logfile) as f:
        return len(f.read().split())


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           memory_limit="2GiB")
    c = Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


@pytest.fixture
def data(tmp_path):
    log = str(tmp_path / "loads.log")
    X, y, Xn, yn = counted_data(log)
    return X, y, Xn, yn, log


@pytest.fixture
def local():
    with dask.config.set(scheduler="threads"):
        yield


def params(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=D) * 0.3, 0.1


def mlp_params(seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(D, 8)) * 0.3, rng.normal(size=8) * 0.1, rng.normal(size=8) * 0.3, 0.05


# -- on the cluster --------------------------------------------------------------------------


@pytest.mark.parametrize("loss", [logistic, linear])
def test_value_and_grad_on_the_cluster_equals_numpy(client, data, loss):
    X, y, Xn, yn, log = data
    w, b = params()
    vg = srcdiff.value_and_grad(loss, wrt=(0, 1))
    value, (dw, db) = vg(w, b, X, y)
    value_n, (dw_n, db_n) = vg(w, b, Xn, yn)
    assert type(value) is float and type(dw) is np.ndarray and type(db) is float
    assert dw.shape == w.shape and dw.dtype == np.float64 and dw.flags.writeable
    np.testing.assert_allclose(value, value_n, **TOL)
    np.testing.assert_allclose(dw, dw_n, **TOL)
    np.testing.assert_allclose(db, db_n, **TOL)
    # the value and both gradients: one evaluation, every chunk read once (the first
    # call compiled, and computed nothing to do so)
    assert loads(log) == N // CHUNK


def test_mlp_on_the_cluster_equals_numpy(client, data):
    X, y, Xn, yn, log = data
    p = mlp_params()
    vg = srcdiff.value_and_grad(mlp, wrt=(0, 1, 2, 3))
    value, grads = vg(*p, X, y)
    value_n, grads_n = vg(*p, Xn, yn)
    np.testing.assert_allclose(value, value_n, **TOL)
    for g, gn, x in zip(grads, grads_n, p):
        assert type(g) is type(gn) and np.shape(g) == np.shape(x)
        np.testing.assert_allclose(g, gn, **TOL)
    assert loads(log) == N // CHUNK


def test_repeated_calls_read_the_data_once_each(client, data):
    X, y, Xn, yn, log = data
    w, b = params()
    g = srcdiff.grad(logistic, wrt=(0, 1))
    for k in range(3):
        g(w, b, X, y)
        assert loads(log) == (k + 1) * (N // CHUNK)


def test_gradient_descent_and_adam_on_dask_data(client, data):
    X, y, Xn, yn, log = data
    vg = srcdiff.value_and_grad(logistic, wrt=(0, 1))
    p0 = params()
    on_dask = optim.train(vg, p0, optim.Momentum(lr=0.5), data=(X, y), steps=4, unpack_params=True)
    on_numpy = optim.train(vg, p0, optim.Momentum(lr=0.5), data=(Xn, yn), steps=4, unpack_params=True)
    np.testing.assert_allclose(on_dask.history, on_numpy.history, **TOL)
    np.testing.assert_allclose(on_dask.params[0], on_numpy.params[0], **TOL)
    assert loads(log) == 4 * (N // CHUNK)  # one pass per step, nothing loaded by train itself
    # minibatches within chunks: each step reads one chunk of X, and an epoch visits every row once
    before = loads(log)
    res = optim.train(vg, p0, optim.Adam(lr=0.05), data=(X, y), batch_size=125, epochs=1, unpack_params=True)
    assert len(res.history) == 2 * (N // CHUNK) and all(np.isfinite(res.history))
    assert loads(log) - before == len(res.history)


def test_scipy_minimize_one_evaluation_per_call(client, data):
    scipy_optimize = pytest.importorskip("scipy.optimize")
    X, y, Xn, yn, log = data
    vg = srcdiff.value_and_grad(logistic, wrt=0)

    def fun(w):
        return vg(w, 0.0, X, y)

    res = scipy_optimize.minimize(fun, np.zeros(D), jac=True, method="L-BFGS-B", options=dict(maxiter=20))
    ref = scipy_optimize.minimize(lambda w: vg(w, 0.0, Xn, yn), np.zeros(D), jac=True, method="L-BFGS-B",
                                  options=dict(maxiter=20))
    np.testing.assert_allclose(res.x, ref.x, rtol=1e-9, atol=1e-9)
    assert loads(log) == res.nfev * (N // CHUNK)  # fun and jac: one graph evaluation


def test_a_killed_worker_still_gives_the_exact_gradient(client, tmp_path):
    log = str(tmp_path / "slow.log")
    X, y, Xn, yn = counted_data(log, n=1600, chunk=200, delay=0.25)
    w, b = params()
    g = srcdiff.grad(logistic, wrt=(0, 1))
    expected = g(w, b, Xn, yn)
    undisturbed = g(w, b, X, y)
    first = loads(log)
    got: list = []
    worker = threading.Thread(target=lambda: got.append(g(w, b, X, y)))
    worker.start()
    deadline = time.monotonic() + 30
    while loads(log) < first + 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    pids = client.run(os.getpid)  # the worker processes this test module started
    victim = sorted(pids.values())[0]
    os.kill(victim, signal.SIGKILL)
    worker.join(timeout=60)
    assert got, "the gradient did not finish after a worker was killed"
    dw, db = got[0]
    # the same tasks again (up to BLAS rounding in another worker process: 1e-15)
    np.testing.assert_allclose(dw, undisturbed[0], rtol=1e-14, atol=1e-17)
    np.testing.assert_allclose(db, undisturbed[1], rtol=1e-14, atol=1e-17)
    np.testing.assert_allclose(dw, expected[0], **TOL)
    np.testing.assert_allclose(db, expected[1], **TOL)
    client.wait_for_workers(2, timeout=30)


# -- what a call returns and raises (local scheduler) ----------------------------------------


def test_dask_arguments_get_lazy_gradients(local, data):
    X, y, Xn, yn, log = data
    w, b = params()
    dw, dX = srcdiff.grad(logistic, wrt=(0, 2))(w, b, X, y)
    assert type(dw) is np.ndarray
    assert isinstance(dX, da.Array) and dX.chunks == X.chunks and dX.dtype == np.float64
    dw_n, dX_n = srcdiff.grad(logistic, wrt=(0, 2))(w, b, Xn, yn)
    np.testing.assert_allclose(dX.compute(), dX_n, **TOL)
    # compute=True: evaluated with the rest, as NumPy
    v, (dw2, dX2) = srcdiff.value_and_grad(logistic, wrt=(0, 2), compute=True)(w, b, X, y)
    assert type(dX2) is np.ndarray
    np.testing.assert_allclose(dX2, dX_n, **TOL)


def test_float32_and_containers(local, data):
    X, y, Xn, yn, log = data
    w, b = params()

    def loss(p, X, y):
        return logistic(p["w"], p["b"], X, y)

    g = srcdiff.grad(loss)({"w": w.astype(np.float32), "b": b}, X.astype(np.float32), y)
    assert g["w"].dtype == np.float32 and type(g["b"]) is float
    gn = srcdiff.grad(loss)({"w": w, "b": b}, Xn, yn)
    np.testing.assert_allclose(g["w"], gn["w"], rtol=1e-4, atol=1e-5)


def test_no_gradient_reaching_a_dask_argument_gives_lazy_zeros(local, data):
    X, y, Xn, yn, log = data

    def loss(w, X, y):
        return np.sum(w ** 2)

    dw, dy = srcdiff.grad(loss, wrt=(0, 2))(np.ones(3), X, y)
    assert isinstance(dy, da.Array) and dy.chunks == y.chunks
    assert float(dy.sum().compute()) == 0.0
    np.testing.assert_array_equal(dw, 2.0 * np.ones(3))


def test_control_flow_on_a_data_value(local, data):
    X, y, Xn, yn, log = data
    w, _ = params()
    np.testing.assert_allclose(srcdiff.grad(thresholded)(w, X), srcdiff.grad(thresholded)(w, Xn), **TOL)
    np.testing.assert_allclose(srcdiff.grad(thresholded)(-w, X), srcdiff.grad(thresholded)(-w, Xn), **TOL)


def test_operations_dask_lacks_name_the_operation_and_line(local, data):
    X, y, Xn, yn, log = data
    w, _ = params()
    with pytest.raises(srcdiff.SrcdiffError, match="numpy.sort is not implemented by Dask") as err:
        srcdiff.grad(sorted_loss)(w, X)
    assert err.value.lineno is not None and "np.sort" in err.value.construct
    assert loads(log) == 0  # nothing was computed to find out
    with pytest.raises(srcdiff.SrcdiffError, match=r"np\.add\.at is not supported") as err:
        srcdiff.grad(scattered)(w, X, np.arange(N) % 3)
    assert "np.add.at" in err.value.construct and err.value.lineno is not None


def test_integer_dask_argument_is_refused(local):
    X = da.ones((10, 2), dtype=int, chunks=5)

    def loss(X):
        return np.sum(X * 1.0)

    with pytest.raises(srcdiff.SrcdiffError, match="dtype int"):
        srcdiff.grad(loss)(X)


def test_chunk_minibatches_stay_in_one_chunk():
    blocks = [(0, 100), (100, 250), (250, 260)]
    it = optim.chunk_minibatch_indices(blocks, 40, seed=3)
    seen = []
    for _ in range(3 + 4 + 1):
        idx = next(it)
        assert any(a <= idx.min() and idx.max() < b for a, b in blocks)
        seen.extend(idx.tolist())
    assert sorted(seen) == list(range(260))
