def rnn_grad(W, U, b, xs, h):
    # forward pass
    stack = []
    t1 = xs.shape
    t2 = t1[0]
    for t in range(t2):
        t3 = W @ h
        t4 = xs[t]
        t5 = U @ t4
        t6 = t3 + t5
        t7 = t6 + b
        stack.append(h)
        h = np.tanh(t7)
    # backward pass
    dt8 = 1.0
    # return np.sum(h ** 2)
    dh = dt8 * 2 * h
    db = np.zeros_like(b)
    dU = np.zeros_like(U)
    dW = np.zeros_like(W)
    for t in reversed(range(t2)):
        # for t in range(xs.shape[0]):
        t4 = xs[t]
        # h = np.tanh(W @ h + U @ xs[t] + b)
        dt7 = dh * (1.0 - h * h)
        h = stack.pop()
        db += dt7
        dU += np.outer(dt7, t4)
        dW += np.outer(dt7, h)
        dh = W.T @ dt7
    return dW, dU, db
