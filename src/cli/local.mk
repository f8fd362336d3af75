# Sources of the crema command: one cmd_<name>.c per subcommand.
crema_SOURCES += src/cli/main.c src/cli/cli.h src/cli/flags.c src/cli/flags.h
crema_SOURCES += src/cli/common.c src/cli/common.h
crema_SOURCES += src/cli/cmd_upgrade_net.c src/cli/cmd_upgrade_solver.c src/cli/cmd_info.c
crema_SOURCES += src/cli/cmd_verify.c src/cli/cmd_time.c
crema_SOURCES += src/cli/cmd_train.c src/cli/cmd_test.c
crema_SOURCES += src/cli/cmd_convert_imageset.c src/cli/cmd_compute_image_mean.c
crema_SOURCES += src/cli/cmd_init.c
crema_SOURCES += src/cli/cmd_lesion_db.c src/cli/cmd_segment.c
crema_SOURCES += src/cli/cmd_synth.c src/cli/cmd_evaluate.c
crema_SOURCES += src/cli/cmd_extract_features.c src/cli/cmd_retrieve.c
