# A file whose value is a function.
n: n * n
