{a, a}: a
