rec { a = 1; }
