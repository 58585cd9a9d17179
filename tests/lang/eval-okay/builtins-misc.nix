[ (builtins.isAttrs builtins) (builtins.langVersion) (builtins.lessThan 1 2) (builtins.trace "traced" 5) (builtins.getEnv "DTX_SURELY_UNSET_VARIABLE") ]
