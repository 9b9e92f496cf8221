def mlp_grad(W1, b1, W2, b2, x):
    # forward pass
    h, layer_saved = layer_fwd(x, W1, b1)
    out, layer_saved_1 = layer_fwd_1(h, W2, b2)
    # backward pass
    # return np.sum(out)
    dout = np.full((2,), 1.0)
    # out = layer(h, W2, b2)
    dh, dW2, db2 = layer_bwd_1(dout, layer_saved_1)
    # h = layer(x, W1, b1)
    dW1, db1 = layer_bwd(dh, layer_saved)
    return rt.mirror(dW1, W1), rt.mirror(db1, b1), rt.mirror(dW2, W2), rt.mirror(db2, b2)


def layer_fwd(x, W, b):
    t1 = W @ x
    t2 = t1 + b
    t3 = np.tanh(t2)
    return t3, (x, t3)


def layer_bwd(dt3, saved):
    x, t3 = saved
    # return np.tanh(W @ x + b)
    dt2 = dt3 * (1.0 - t3 * t3)
    db = dt2
    dW = np.outer(dt2, x)
    return dW, db


def layer_fwd_1(x, W, b):
    t1 = W @ x
    t2 = t1 + b
    t3 = np.tanh(t2)
    return t3, (W, x, t3)


def layer_bwd_1(dt3, saved):
    W, x, t3 = saved
    # return np.tanh(W @ x + b)
    dt2 = dt3 * (1.0 - t3 * t3)
    db = dt2
    dW = np.outer(dt2, x)
    dx = W.T @ dt2
    return dx, dW, db
