with {}; {a.${x}.b = 1;}
