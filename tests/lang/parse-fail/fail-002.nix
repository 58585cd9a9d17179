with {}; [ f x (g y) -1 ]
