let { body = 1; }
