def halve_grad(x):
    # forward pass
    stack = []
    n_iter = 0
    while x > 1.0:
        n_iter += 1
        stack.append(x)
        x = x / 2.0
    # backward pass
    dt1 = 1.0
    # return x * x
    dx = dt1 * x
    dx += x
    for _ in range(n_iter):
        # while x > 1.0:
        # x = x / 2.0
        dx = dx / 2.0
        x = stack.pop()
    return rt.mirror(dx, x)
