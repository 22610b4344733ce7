/** DDP: cluster environments, the zeromq process group, the launcher and the strategy ('ddp'). */
export { DDPStrategy, type DDPStrategyOptions } from './ddpStrategy.js';
export {
  detectClusterEnvironment,
  expandSlurmNodelist,
  kubeflowEnvironment,
  lightningEnvironment,
  slurmEnvironment,
  slurmRootHost,
  torchElasticEnvironment,
  LAUNCHER_ENV,
  type ClusterEnvironment,
  type Env,
} from './environment.js';
export { DistributedError } from './errors.js';
export {
  findFreePort,
  launchDdp,
  planDdpLaunch,
  validateLaunchOptions,
  watchLauncher,
  type DdpFlags,
  type LaunchOptions,
  type LaunchPlan,
  type LaunchResult,
  type WorkerExit,
} from './launcher.js';
export { DEFAULT_BUCKET_CAP_MB, DEFAULT_TIMEOUT_SECONDS, ProcessGroup, TIMEOUT_ENV, timeoutFromEnv, type ProcessGroupOptions, type ReduceOp } from './processGroup.js';
