[ (true && false) (true || false) (!true) (false -> true) (true -> false) (false -> throw "lazy") (true || throw "lazy") (false && throw "lazy") (!false && true) ]
