with {}; -(-a)
