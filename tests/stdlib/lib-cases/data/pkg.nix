{ a, b ? 2 }: { sum = a + b; }
