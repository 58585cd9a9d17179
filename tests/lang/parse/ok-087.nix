with {}; (-a) c
