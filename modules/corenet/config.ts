/**
 * CoreNet configs in lightclip: `--common.config-file X.yaml [--common.override-kwargs k=v …]`
 * and `--ddp.rank/--ddp.world-size/--ddp.dist-url`, translated into train.ts flags.
 *
 * CoreNet's rules (shared/research/corenet.md §7): the YAML is flattened with `.`; top-level
 * `taskname` and `_anchor_*` are meta keys; precedence is defaults < CLI flags < YAML <
 * override-kwargs (so the YAML-derived flags are placed after the user's own); override values
 * are cast with the type of the YAML value (lists comma-separated, booleans true if the value
 * contains "true").
 *
 * Every key is either mapped to a lightclip option, accepted as having no effect here (listed in
 * the returned notes with the reason), or unsupported: all unsupported keys are reported together
 * in one error. Only CatLIP pre-training (`dataset.name: wordnet_tagged_classification`) maps
 * to a model today.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { MisconfigurationError } from '../../core/errors.js';

type Value = unknown;

/** Flattens nested mappings with '.', keeping lists and scalars as leaves. */
export function flattenConfig(obj: Record<string, Value>, prefix = '', out: Record<string, Value> = {}): Record<string, Value> {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) flattenConfig(v as Record<string, Value>, key, out);
    else out[key] = v;
  }
  return out;
}

function castLike(existing: Value, raw: string): Value {
  if (typeof existing === 'boolean') return raw.toLowerCase().includes('true');
  if (typeof existing === 'number') {
    const n = Number(raw);
    if (!Number.isFinite(n)) throw new MisconfigurationError(`--common.override-kwargs: '${raw}' is not a number`);
    return n;
  }
  if (Array.isArray(existing)) return raw.split(',').map((x) => castLike(existing[0] ?? '', x));
  if (typeof existing === 'string') return raw;
  return /^-?\d+(\.\d+)?(e-?\d+)?$/i.test(raw) ? Number(raw) : raw;
}

/** Applies `k=v` overrides (dest names) to a flat config. */
export function applyOverrides(flat: Record<string, Value>, overrides: readonly string[]): void {
  for (const item of overrides) {
    const eq = item.indexOf('=');
    if (eq <= 0 || item.indexOf('=', eq + 1) >= 0) throw new MisconfigurationError(`--common.override-kwargs: expected key=value with one '=', got '${item}'`);
    const key = item.slice(0, eq).replace(/-/g, '_');
    flat[key] = castLike(flat[key], item.slice(eq + 1));
  }
}

const NO_EFFECT: Record<string, string> = {
  'common.run_label': 'run names come from the logger',
  'common.log_freq': 'use --log_every_n_steps',
  'common.auto_resume': 'use --resume last',
  'common.save_all_checkpoints': 'ModelCheckpoint keeps last.ckpt',
  'common.save_interval_freq': 'use --checkpoint_every_n_steps',
  'common.mixed_precision': 'tfjs trains in float32 only',
  'common.mixed_precision_dtype': 'tfjs trains in float32 only',
  'dataset.root_train': 'data comes from --folder (a non-empty value is used as --folder)',
  'dataset.disable_val': 'no validation unless --val_folder/--val_fraction',
  'dataset.category': 'implied by dataset.name',
  'dataset.persistent_workers': 'decode workers live for the whole run',
  'dataset.pin_memory': 'no GPU transfer',
  'dataset.collate_fn_name_train': 'batches are collated by the datamodule',
  'model.activation_checkpointing': 'memory only; names and results unaffected',
  'model.classification.vit.norm_layer': 'LayerNorm runs in float32 anyway',
  'model.classification.vit.use_flash_attention': 'an attention kernel choice; results unaffected',
  'model.activation.name': 'the CatLIP ViT uses exact GELU',
  'model.layer.conv_init': 'initialisation only',
  'model.layer.linear_init': 'the classifier is trunc-normal(0.02) already',
  'model.layer.linear_init_std_dev': 'the classifier is trunc-normal(0.02) already',
  'optim.no_decay_bn_filter_bias': 'norms and biases are never decayed',
  'scheduler.is_iteration_based': 'schedules are per step',
  'scheduler.warmup_init_lr': 'warmup starts from 0 (CosineWarmupScheduler)',
  'stats.train': 'train_loss is always logged',
  'stats.val': 'val_loss is logged when there is validation',
  'stats.checkpoint_metric': 'last.ckpt is kept',
  'stats.checkpoint_metric_max': 'last.ckpt is kept',
};

export interface CorenetTranslation {
  /** train.ts flags, in order. */
  flags: string[];
  /** Keys accepted without effect, with the reason. */
  notes: string[];
}

/** Translates a flattened CoreNet config into train.ts flags; throws listing every unsupported key. */
export function corenetToFlags(flat: Record<string, Value>, source: string): CorenetTranslation {
  const flags: string[] = [];
  const notes: string[] = [];
  const bad: string[] = [];
  const used = new Set<string>();
  const take = (k: string): Value => {
    used.add(k);
    return flat[k];
  };
  const need = (k: string, expected: Value[], why: string): void => {
    if (!(k in flat)) return;
    const v = take(k);
    if (!expected.some((e) => e === v)) bad.push(`${k}: ${JSON.stringify(v)} (${why})`);
  };
  const set = (flag: string, v: Value): void => {
    if (v === undefined || v === null || v === '') return;
    flags.push(`--${flag}`, String(v));
  };
  for (const k of Object.keys(flat)) if (k === 'taskname' || k.startsWith('_anchor_')) used.add(k);

  const dataset = take('dataset.name');
  if (dataset !== 'wordnet_tagged_classification') {
    bad.push(`dataset.name: ${JSON.stringify(dataset ?? null)} (only wordnet_tagged_classification, CatLIP pre-training, is translated; CLIP's img_text_tar is not yet)`);
  } else flags.push('--model', 'catlip');
  set('vocab', take('dataset.wordnet_tagged_classification.vocab_file'));
  set('vocab_size', take('dataset.wordnet_tagged_classification.vocab_size'));
  if ('dataset.wordnet_tagged_classification.metadata_file' in flat) {
    take('dataset.wordnet_tagged_classification.metadata_file');
    bad.push('dataset.wordnet_tagged_classification.metadata_file (CoreNet tar metadata is not read; pass --folder)');
  }
  const root = flat['dataset.root_train'];
  if (typeof root === 'string' && root) set('folder', root);
  set('batch_size', take('dataset.train_batch_size0'));
  const workers = take('dataset.workers');
  if (typeof workers === 'number') set('num_workers', workers < 0 ? 2 : workers);
  const n = take('model.classification.n_classes');
  const vs = flat['dataset.wordnet_tagged_classification.vocab_size'];
  if (n !== undefined && vs !== undefined && n !== vs) bad.push(`model.classification.n_classes: ${String(n)} (must equal dataset.wordnet_tagged_classification.vocab_size ${String(vs)})`);
  need('model.classification.name', ['vit'], 'only the ViT is translated');
  const mode = take('model.classification.vit.mode');
  const modes: Record<string, string> = { tiny: 'tiny-ViT', base: 'ViT-B/16', large: 'ViT-L/14' };
  if (mode !== undefined) {
    if (mode === 'base') set('model_name', 'ViT-B/16');
    else bad.push(`model.classification.vit.mode: ${JSON.stringify(mode)} (only base; known lightclip towers: ${Object.values(modes).join(', ')})`);
  }
  need('optim.name', ['adamw'], 'CatLIP trains with AdamW');
  need('optim.adamw.beta1', [0.9], 'CatLIP uses betas (0.9, 0.999)');
  need('optim.adamw.beta2', [0.999], 'CatLIP uses betas (0.9, 0.999)');
  set('weight_decay', take('optim.weight_decay'));
  need('scheduler.name', ['cosine'], 'cosine with warmup');
  set('max_steps', take('scheduler.max_iterations'));
  set('warmup_steps', take('scheduler.warmup_iterations'));
  set('lr', take('scheduler.cosine.max_lr'));
  const minLr = take('scheduler.cosine.min_lr');
  if (minLr !== undefined) flags.push('--model_args', JSON.stringify({ minLr }));
  if (flat['ema.enable'] === false) set('ema_decay', 0);
  else if (typeof flat['ema.momentum'] === 'number') set('ema_decay', 1 - (flat['ema.momentum'] as number));
  take('ema.enable');
  take('ema.momentum');
  const clip = take('common.grad_clip');
  set('gradient_clip_val', clip === null ? 0 : clip);
  set('seed', take('common.seed'));
  set('default_root_dir', take('common.results_loc'));
  if ('loss.category' in flat) {
    const cat = take('loss.category');
    const list = take('loss.composite_loss');
    const parts = cat === 'composite_loss' && Array.isArray(list) ? (list as Array<Record<string, Value>>) : cat === 'classification' ? [{ loss_category: 'classification', loss_weight: 1, classification: { name: flat['loss.classification.name'], binary_cross_entropy: { reduction: flat['loss.classification.binary_cross_entropy.reduction'] } } }] : [];
    take('loss.classification.name');
    take('loss.classification.binary_cross_entropy.reduction');
    if (parts.length === 0) bad.push(`loss.category: ${JSON.stringify(cat)} (expected classification or composite_loss)`);
    for (const p of parts) {
      const c = p.classification as Record<string, Record<string, Value> | Value> | undefined;
      if (p.loss_category === 'classification' && c?.name === 'binary_cross_entropy' && (c.binary_cross_entropy as Record<string, Value> | undefined)?.reduction === 'batch_mean' && (p.loss_weight ?? 1) === 1) continue;
      bad.push(`loss: ${JSON.stringify(p.loss_category)} term ${JSON.stringify(c?.name ?? p[String(p.loss_category)] ?? null)} (only binary_cross_entropy with reduction batch_mean, weight 1, is supported; RangeAugment's neural_augmentation is not implemented)`);
    }
  }
  for (const k of Object.keys(flat)) {
    if (used.has(k)) continue;
    if (k in NO_EFFECT) notes.push(`${k}: no effect in lightclip (${NO_EFFECT[k]})`);
    else if (k.startsWith('sampler.')) bad.push(`${k} (the variable-batch sampler exists in datamodules/variableBatchSampler.ts but train.ts's datamodules do not use it yet)`);
    else if (k.startsWith('image_augmentation.')) bad.push(`${k} (training crops are the folder datamodule's RandomResizedCrop; CoreNet augmentation keys are not translated)`);
    else if (k.startsWith('model.learn_augmentation.')) bad.push(`${k} (RangeAugment is not implemented)`);
    else bad.push(k);
  }
  if (bad.length) {
    throw new MisconfigurationError(`${source}: ${bad.length} CoreNet key(s) not supported by lightclip:\n  ${bad.join('\n  ')}\nRemove them or set them with --common.override-kwargs.`);
  }
  return { flags, notes };
}

/** Reads a CoreNet YAML, applies override-kwargs, translates. */
export function readCorenetConfig(file: string, overrides: readonly string[] = []): CorenetTranslation {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'), { merge: true });
  } catch (e) {
    throw new MisconfigurationError(`--common.config-file ${file}: ${(e as Error).message}`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new MisconfigurationError(`--common.config-file ${file}: expected a YAML mapping`);
  if ('include_configs' in (doc as object)) throw new MisconfigurationError(`--common.config-file ${file}: include_configs is not supported`);
  const flat = flattenConfig(doc as Record<string, Value>);
  applyOverrides(flat, overrides);
  return corenetToFlags(flat, file);
}

/**
 * Rewrites CoreNet-style arguments in a train.ts argv: `--common.config-file F`,
 * `--common.override-kwargs k=v …` (values up to the next `--flag`), `--common.results-loc D`,
 * `--ddp.rank R --ddp.world-size W --ddp.dist-url tcp://H:P`. CoreNet's ddp.rank is the global
 * rank of the node's first process; with `--devices G` processes per node (default 1 on CPU)
 * it becomes `--node_rank R/G --num_nodes W/G --master_addr H --master_port P`.
 */
export function translateCorenetArgv(argv: readonly string[], log: (line: string) => void = (l) => console.error(l)): string[] {
  if (!argv.some((a) => a.startsWith('--common.') || a.startsWith('--ddp.'))) return [...argv];
  const rest: string[] = [];
  let file: string | undefined;
  const overrides: string[] = [];
  const ddp: Record<string, string> = {};
  const after: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [name, inline] = a.includes('=') && a.startsWith('--') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined) throw new MisconfigurationError(`${name} needs a value`);
      return v;
    };
    if (name === '--common.config-file') file = value();
    else if (name === '--common.override-kwargs') {
      if (inline !== undefined) overrides.push(inline);
      while (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) overrides.push(argv[++i]!);
    } else if (name === '--common.results-loc') after.push('--default_root_dir', value());
    else if (name.startsWith('--ddp.')) ddp[name.slice(6).replace(/-/g, '_')] = value();
    else if (name.startsWith('--common.')) throw new MisconfigurationError(`${name}: CoreNet flag not supported by lightclip (supported: --common.config-file, --common.override-kwargs, --common.results-loc)`);
    else rest.push(a);
  }
  const out = [...rest];
  if (file) {
    const t = readCorenetConfig(file, overrides);
    for (const n of t.notes) log(`corenet config: ${n}`);
    out.push(...t.flags);
  } else if (overrides.length) throw new MisconfigurationError('--common.override-kwargs needs --common.config-file');
  out.push(...after);
  for (const k of Object.keys(ddp)) if (!['rank', 'world_size', 'dist_url'].includes(k)) throw new MisconfigurationError(`--ddp.${k.replace(/_/g, '-')}: not supported (supported: --ddp.rank, --ddp.world-size, --ddp.dist-url)`);
  if (Object.keys(ddp).length) {
    const di = rest.indexOf('--devices');
    const g = di >= 0 ? Number(rest[di + 1]) : 1;
    const world = Number(ddp.world_size ?? '-1');
    const rank = Number(ddp.rank ?? '0');
    if (!(Number.isInteger(world) && world >= 1)) throw new MisconfigurationError(`--ddp.world-size must be the total number of processes (≥ 1), got ${ddp.world_size}`);
    if (!(Number.isInteger(rank) && rank >= 0 && rank < world && rank % g === 0 && world % g === 0)) {
      throw new MisconfigurationError(`--ddp.rank ${ddp.rank} must be a multiple of --devices ${g} below --ddp.world-size ${world} (CoreNet: node_id × processes per node)`);
    }
    out.push('--strategy', 'ddp', '--num_nodes', String(world / g), '--node_rank', String(rank / g));
    if (ddp.dist_url) {
      const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d+)$/.exec(ddp.dist_url);
      if (!m) throw new MisconfigurationError(`--ddp.dist-url must be tcp://HOST:PORT, got ${ddp.dist_url}`);
      out.push('--master_addr', m[1]!, '--master_port', m[2]!);
    }
  }
  return out;
}
