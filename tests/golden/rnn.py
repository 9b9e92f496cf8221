def rnn_grad(W, U, b, xs, h):
    # forward pass
    stack = []
    t2 = xs.shape[0]
    for t in range(t2):
        t4 = xs[t]
        stack.append(h)
        h = np.tanh(W @ h + U @ t4 + b)
    # backward pass
    # return np.sum(h ** 2)
    dh = 2.0 * h
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
