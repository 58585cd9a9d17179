assert 1 + 1 == 2; assert true; "ok"
