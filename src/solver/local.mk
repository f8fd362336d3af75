# Sources of src/solver/: training loop, update rules, lr policies, SolverState.
libcrema_impl_la_SOURCES += \
	src/solver/lr_policy.c src/solver/lr_policy.h \
	src/solver/update.c src/solver/update.h \
	src/solver/state.c src/solver/state.h \
	src/solver/signals.c src/solver/signals.h \
	src/solver/solver.c src/solver/solver.h
# The public solver API (crema_solver_*).
libcrema_impl_la_SOURCES += src/solver/api.c
