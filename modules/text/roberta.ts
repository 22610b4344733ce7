/**
 * RoBERTa (Liu et al. 2019) as transformers' `RobertaModel`: BERT's encoder and state-dict
 * names, with position ids that skip padding. DeCLUTR's RoBERTa-based checkpoints
 * (`johngiorgi/declutr-small`, `declutr-base`) and XLM-R/CamemBERT load here too; a
 * checkpoint whose `config.json` says `bert` (SciBERT-based ones) belongs to `BertModel`.
 */
import { tf, type Tensor } from '../../core/tf.js';
import { BertModel } from './bert.js';
import type { FromPretrainedOptions } from './pretrained.js';

/**
 * transformers' `create_position_ids_from_input_ids`: non-padding tokens are numbered
 * `padding_idx + 1, padding_idx + 2, ...` in order (a running count), padding tokens get
 * `padding_idx` itself, whose embedding row is the padding row.
 *
 * Like transformers, the ids (not the attention mask) decide what is padding: a tokenizer
 * pads with `pad_token_id`, so the two agree on tokenizer output.
 * @param inputIds `[B, L]` int32 ids.
 */
export function robertaPositionIds(inputIds: Tensor, paddingIdx: number): Tensor {
  return tf.tidy(() => {
    const notPad = tf.cast(tf.notEqual(inputIds, paddingIdx), 'int32');
    return tf.add(tf.mul(tf.cumsum(notPad, 1), notPad), paddingIdx);
  });
}

/**
 * transformers' `RobertaModel`: `embeddings.*`, `encoder.layer.N.*` and `pooler.dense`
 * exactly as {@link BertModel}; positions from {@link robertaPositionIds}, so at most
 * `max_position_embeddings − pad_token_id − 1` tokens (512 for roberta-base's 514).
 */
export class RobertaModel extends BertModel {
  /**
   * Loads a RoBERTa checkpoint (local directory or hub id; see `loadHfTextEncoder`).
   * @throws MisconfigurationError when `config.json`'s `model_type` is not RoBERTa-like.
   */
  static override async fromPretrained(idOrDir: string, options: FromPretrainedOptions = {}): Promise<RobertaModel> {
    const { loadHfTextEncoder } = await import('./pretrained.js');
    return (await loadHfTextEncoder(idOrDir, options, 'roberta')).model as RobertaModel;
  }

  override get maxSequenceLength(): number {
    return this.config.maxPositionEmbeddings - this.config.padTokenId - 1;
  }

  protected override positionIds(ids: Tensor): Tensor {
    return robertaPositionIds(ids, this.config.padTokenId);
  }
}
