with builtins; [ (isInt 1) (typeOf "a") ]
