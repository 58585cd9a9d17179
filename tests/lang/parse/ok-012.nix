with {};./${x}/b
