import { describe, expect, it } from 'vitest';
import { MisconfigurationError } from '../../core/errors.js';
import { detectClusterEnvironment, expandSlurmNodelist, slurmRootHost } from '../../strategies/ddp/environment.js';

describe('detectClusterEnvironment', () => {
  it('a plain process is rank 0 of 1, started by nobody', () => {
    expect(detectClusterEnvironment({})).toEqual({
      name: 'lightning',
      createsProcessesExternally: false,
      mainAddress: '127.0.0.1',
      mainPort: null,
      worldSize: 1,
      globalRank: 0,
      localRank: 0,
      nodeRank: 0,
    });
  });

  it("reads lightclip's launcher variables, even inside Slurm or Kubernetes", () => {
    const env = {
      LIGHTCLIP_DDP_LAUNCHER: '42',
      RANK: '3',
      LOCAL_RANK: '1',
      NODE_RANK: '1',
      WORLD_SIZE: '4',
      MASTER_ADDR: '10.0.0.1',
      MASTER_PORT: '29500',
      SLURM_NTASKS: '2',
      KUBERNETES_PORT: 'tcp://10.96.0.1:443',
    };
    expect(detectClusterEnvironment(env)).toMatchObject({ name: 'lightning', createsProcessesExternally: true, globalRank: 3, localRank: 1, nodeRank: 1, worldSize: 4, mainAddress: '10.0.0.1', mainPort: 29500 });
  });

  it('torchrun: TORCHELASTIC_RUN_ID or the four rank variables', () => {
    const env = { TORCHELASTIC_RUN_ID: 'abc', RANK: '5', LOCAL_RANK: '1', GROUP_RANK: '2', LOCAL_WORLD_SIZE: '2', WORLD_SIZE: '8', MASTER_ADDR: 'head', MASTER_PORT: '29400' };
    expect(detectClusterEnvironment(env)).toEqual({
      name: 'torchelastic',
      createsProcessesExternally: true,
      mainAddress: 'head',
      mainPort: 29400,
      worldSize: 8,
      globalRank: 5,
      localRank: 1,
      nodeRank: 2,
    });
    const { TORCHELASTIC_RUN_ID: _, ...legacy } = env;
    expect(detectClusterEnvironment(legacy).name).toBe('torchelastic');
    expect(() => detectClusterEnvironment({ ...env, RANK: '8' })).toThrow(/`RANK=8` must be less than `WORLD_SIZE=8`/);
    expect(() => detectClusterEnvironment({ ...env, WORLD_SIZE: undefined })).toThrow(/`WORLD_SIZE` is not set, but torchrun sets it/);
  });

  it('Kubeflow: one process per pod, node rank = rank', () => {
    const env = { KUBERNETES_PORT: 'tcp://10.96.0.1:443', MASTER_ADDR: 'job-master-0', MASTER_PORT: '23456', WORLD_SIZE: '3', RANK: '2' };
    expect(detectClusterEnvironment(env)).toEqual({
      name: 'kubeflow',
      createsProcessesExternally: true,
      mainAddress: 'job-master-0',
      mainPort: 23456,
      worldSize: 3,
      globalRank: 2,
      localRank: 0,
      nodeRank: 2,
    });
    // Without the rendezvous variables a pod is just a machine.
    expect(detectClusterEnvironment({ KUBERNETES_PORT: 'tcp://10.96.0.1:443' }).name).toBe('lightning');
  });

  it('Slurm: ranks from SLURM_*, host from the node list, port from the job id', () => {
    const env = { SLURM_NTASKS: '6', SLURM_PROCID: '4', SLURM_LOCALID: '1', SLURM_NODEID: '2', SLURM_NODELIST: 'node[01-03],gpu7', SLURM_JOB_ID: '1234567', SLURM_JOB_NAME: 'train' };
    expect(detectClusterEnvironment(env)).toEqual({
      name: 'slurm',
      createsProcessesExternally: true,
      mainAddress: 'node01',
      mainPort: 15000 + 4567,
      worldSize: 6,
      globalRank: 4,
      localRank: 1,
      nodeRank: 2,
    });
    expect(detectClusterEnvironment({ ...env, MASTER_ADDR: 'login', MASTER_PORT: '1234' })).toMatchObject({ mainAddress: 'login', mainPort: 1234 });
    expect(detectClusterEnvironment({ ...env, SLURM_JOB_ID: undefined }).mainPort).toBe(12910);
    // An interactive allocation is not srun-launched: the CLI launches workers itself.
    expect(detectClusterEnvironment({ ...env, SLURM_JOB_NAME: 'bash' }).name).toBe('lightning');
    expect(() => detectClusterEnvironment({ ...env, SLURM_PROCID: 'x' })).toThrow(/`SLURM_PROCID` must be an integer ≥ 0, got "x"/);
    expect(() => detectClusterEnvironment({ ...env, SLURM_PROCID: '6' })).toThrow(/`SLURM_PROCID=6` must be less than `SLURM_NTASKS=6`/);
  });

  it('validates the launcher variables', () => {
    expect(() => detectClusterEnvironment({ WORLD_SIZE: '0' })).toThrow(MisconfigurationError);
    expect(() => detectClusterEnvironment({ WORLD_SIZE: '2', RANK: '1', LOCAL_RANK: '1', MASTER_PORT: '99999' })).toThrow(/`MASTER_PORT` must be a port in \[1, 65535\], got 99999/);
  });
});

describe('Slurm node lists', () => {
  it.each([
    ['node01', ['node01']],
    ['node[01-03],gpu7', ['node01', 'node02', 'node03', 'gpu7']],
    ['gpu7,node[1-2]', ['gpu7', 'node1', 'node2']],
    ['n[008-011,20]', ['n008', 'n009', 'n010', 'n011', 'n20']],
    ['rack[1-2]-n[1-2]', ['rack1-n1', 'rack1-n2', 'rack2-n1', 'rack2-n2']],
    ['a[1]-ib,b', ['a1-ib', 'b']],
  ])('%s', (list, hosts) => {
    expect(expandSlurmNodelist(list)).toEqual(hosts);
    expect(slurmRootHost(list)).toBe(hosts[0]);
  });

  it.each(['node[01-03', 'node[a-b]', 'node[3-1]', 'n[[1]]', ''])('rejects %j naming SLURM_NODELIST', (list) => {
    expect(() => slurmRootHost(list)).toThrow(/SLURM_NODELIST/);
  });
});
