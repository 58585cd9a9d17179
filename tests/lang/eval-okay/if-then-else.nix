[ (if true then 1 else 2) (if false then 1 else 2) (if 1 < 2 then "a" else "b") (if null == null then if false then 1 else 3 else 4) ]
