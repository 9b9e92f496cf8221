def relu_branch_grad(x, w):
    # forward pass
    z = w * x
    t1 = z > 0.0
    if t1:
        y = z
    else:
        y = 0.01 * z
    # backward pass
    dt2 = 1.0
    # return y * y
    dy = dt2 * y
    dy += y
    if t1:
        # y = z
        dz = dy
    else:
        # y = 0.01 * z
        dz = dy * 0.01
    # z = w * x
    dw = dz * x
    dx = dz * w
    return rt.mirror(dx, x), rt.mirror(dw, w)
