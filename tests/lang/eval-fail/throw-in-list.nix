[ 1 (throw "deep error") ]
