let f = s@{ x ? 5 }: [ x (s ? x) s ]; in f {}
