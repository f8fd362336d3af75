/* Caffe's solver upgrade: the solver_type enum becomes the type string
 * (UpgradeSolverType of upgrade_proto.cpp). */
#include "config.h"

#include "core/log.h"
#include "io/upgrade.h"
#include "io/upgrade_impl.h"

static const char *solver_type_name(Caffe__SolverParameter__SolverType t) {
  switch (t) {
    case CAFFE__SOLVER_PARAMETER__SOLVER_TYPE__SGD: return "SGD";
    case CAFFE__SOLVER_PARAMETER__SOLVER_TYPE__NESTEROV: return "Nesterov";
    case CAFFE__SOLVER_PARAMETER__SOLVER_TYPE__ADAGRAD: return "AdaGrad";
    case CAFFE__SOLVER_PARAMETER__SOLVER_TYPE__RMSPROP: return "RMSProp";
    case CAFFE__SOLVER_PARAMETER__SOLVER_TYPE__ADADELTA: return "AdaDelta";
    case CAFFE__SOLVER_PARAMETER__SOLVER_TYPE__ADAM: return "Adam";
    default: return NULL;
  }
}

crema_status upgrade_solver(Caffe__SolverParameter *solver, const char *path,
                            crema_log_level level, int *upgraded, crema_error *err) {
  if (upgraded)
    *upgraded = 0;
  if (!solver->has_solver_type)
    return CREMA_OK;
  LOG_INFO_AT(level,
              "Attempting to upgrade input file specified using deprecated 'solver_type' field "
              "(enum)': %s",
              path);
  if (str_present(solver->type, caffe__solver_parameter__type__default_value))
    return crema_fail(err, CREMA_ERR_INVALID,
                      "%s: failed to upgrade solver: old solver_type field (enum) and new type "
                      "field (string) cannot be both specified",
                      path);
  const char *name = solver_type_name(solver->solver_type);
  if (!name)
    return crema_fail(err, CREMA_ERR_INVALID, "%s: unknown solver_type %d", path,
                      (int)solver->solver_type);
  char *type = crema_strdup(name, err);
  if (!type)
    return CREMA_ERR_NOMEM;
  solver->type = type;
  solver->has_solver_type = 0;
  solver->solver_type = CAFFE__SOLVER_PARAMETER__SOLVER_TYPE__SGD;
  LOG_INFO_AT(level,
              "Successfully upgraded file specified using deprecated 'solver_type' field (enum) to "
              "'type' field (string).");
  LOG_WARN_AT(level,
              "Note that future Caffe releases will only support 'type' field (string) for a "
              "solver's type.");
  if (upgraded)
    *upgraded = 1;
  return CREMA_OK;
}
