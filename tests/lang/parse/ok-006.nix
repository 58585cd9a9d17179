{zz ? 1, b, a}: a
