let max = 9223372036854775807; min = -max - 1; in
[ (max + 1) (min - 1) (max * max) (min * -1) (min / 2) (max / -1) (-min) (min + min) (3037000500 * 3037000500) ]
