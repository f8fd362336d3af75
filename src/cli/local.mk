# Sources of the crema command: one cmd_<name>.c per subcommand.
crema_SOURCES += src/cli/main.c src/cli/cli.h src/cli/flags.c src/cli/flags.h
