/** Between text and token ids: tokenizing a prompt, incremental detokenization, stop sequences, and tokens as text. */
import type { Tokenizer } from "@huggingface/tokenizers";
import type { TokenText } from "./logprobs.ts";

/** What generation needs of a tokenizer. */
export interface TextCodec {
  /** The prompt's token ids. */
  encode(text: string): number[];
  /** A detokenizer for one stream. */
  newDetokenizer(): Detokenizer;
  /**
   * One token as log-probabilities show it (OpenAI's convention): its bytes (byte-level BPE: the piece's bytes;
   * an added token: its content's UTF-8; otherwise the UTF-8 of what the tokenizer decodes it to), and those
   * bytes as text when they are valid UTF-8, else `bytes:` and each byte as \xNN.
   */
  tokenText(id: number): TokenText;
  /** The token that ends a generation, if the model has one. */
  readonly eosId: number | undefined;
}

/** The codec for a tokenizer loaded from its tokenizer.json (`json`); throws if `eosToken` is not in its vocabulary. */
export function textCodec(tokenizer: Tokenizer, json: { decoder?: unknown }, eosToken: string | undefined): TextCodec {
  const decode = (ids: number[]) => (ids.length === 0 ? "" : tokenizer.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false }));
  const eosId = eosToken === undefined ? undefined : tokenizer.token_to_id(eosToken);
  if (eosToken !== undefined && eosId === undefined) throw new Error(`the eos_token '${eosToken}' is not in the tokenizer's vocabulary`);
  const byteLevel = isByteLevel(json.decoder);
  const added = tokenizer.get_added_tokens_decoder();
  const utf8 = new TextEncoder();
  const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  // Filled as log-probabilities ask: most of a vocabulary is never shown.
  const texts = new Map<number, TokenText>();
  const bytesOf = (id: number): Uint8Array => {
    const addedToken = added.get(id);
    if (addedToken) return utf8.encode(addedToken.content);
    const piece = tokenizer.id_to_token(id);
    if (piece === undefined) return new Uint8Array(0); // past the vocabulary (logits padded wider than it)
    const bytes = byteLevel ? byteLevelBytes(piece) : undefined;
    return bytes ?? utf8.encode(tokenizer.decode([id], { skip_special_tokens: false, clean_up_tokenization_spaces: false }));
  };
  return {
    encode: (text) => tokenizer.encode(text).ids,
    newDetokenizer: detokenizerFor(tokenizer, json.decoder, decode),
    tokenText(id) {
      let text = texts.get(id);
      if (!text) {
        const bytes = bytesOf(id);
        let token: string;
        try {
          token = strict.decode(bytes);
        } catch {
          token = "bytes:" + Array.from(bytes, (b) => `\\x${b.toString(16).padStart(2, "0")}`).join("");
        }
        text = { token, bytes: Array.from(bytes) };
        texts.set(id, text);
      }
      return text;
    },
    eosId,
  };
}

const isByteLevel = (decoderConfig: unknown) => (decoderConfig as { type?: unknown } | null)?.type === "ByteLevel";

/** Turns one stream's token ids into text as they come. */
export interface Detokenizer {
  /** Adds a token; returns the text it completes ("" while a character is still incomplete). */
  push(id: number): string;
  /** Everything not yet released, incomplete characters included (as U+FFFD). */
  flush(): string;
}

/**
 * A detokenizer factory for this tokenizer: byte by byte when its decoding is plain byte-level BPE (GPT-2's
 * convention), else by decoding windows of ids with the tokenizer itself. Both give the text
 * `tokenizer.decode(ids, { skip_special_tokens: true })` gives; the byte path costs a table lookup per token
 * instead of two decodes, a visible share of the worker's time at sixteen streams (docs/performance.md).
 */
export function detokenizerFor(tokenizer: Tokenizer, decoderConfig: unknown, decode: (ids: number[]) => string): () => Detokenizer {
  const pieces = isByteLevel(decoderConfig) ? byteLevelPieces(tokenizer) : undefined;
  return pieces ? () => new ByteLevelDecoder(pieces) : () => new IncrementalDecoder(decode);
}

/**
 * Incremental detokenization with the tokenizer's own decode, for any tokenizer. Tokens may split a UTF-8
 * character (byte-level BPE, byte fallback), so text is only released when the decoded suffix does not end
 * in U+FFFD. To stay cheap it decodes a short window, as Hugging Face TGI does: `prefix..read` is text
 * already released (kept as context so tokenizers that depend on the previous token decode the same),
 * `read..end` is what is new.
 */
export class IncrementalDecoder implements Detokenizer {
  private readonly ids: number[] = [];
  private prefix = 0;
  private read = 0;

  constructor(private readonly decode: (ids: number[]) => string) {}

  push(id: number): string {
    this.ids.push(id);
    return this.release(false);
  }

  flush(): string {
    return this.release(true);
  }

  private release(force: boolean): string {
    const before = this.decode(this.ids.slice(this.prefix, this.read));
    const now = this.decode(this.ids.slice(this.prefix));
    if (now.length > before.length && (force || !now.endsWith("\uFFFD"))) {
      this.prefix = this.read;
      this.read = this.ids.length;
      return now.slice(before.length);
    }
    return "";
  }
}

/**
 * GPT-2's byte-level alphabet, reversed: the character a vocabulary entry uses for each byte → the byte.
 * Printable Latin-1 bytes stand for themselves; the other 68 bytes are shifted to U+0100 and up, in order.
 */
const BYTE_OF_CHAR: ReadonlyMap<string, number> = (() => {
  const map = new Map<string, number>();
  let shifted = 0;
  for (let byte = 0; byte < 256; byte++) {
    const printable = (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
    map.set(String.fromCharCode(printable ? byte : 256 + shifted++), byte);
  }
  return map;
})();

/** The bytes a byte-level vocabulary entry stands for; undefined if it uses a character outside the byte alphabet. */
function byteLevelBytes(piece: string): Uint8Array | undefined {
  const bytes = new Uint8Array(piece.length);
  for (let i = 0; i < piece.length; i++) {
    const byte = BYTE_OF_CHAR.get(piece[i]!);
    if (byte === undefined) return undefined;
    bytes[i] = byte;
  }
  return bytes;
}

/**
 * What each token id stands for in a byte-level vocabulary: its bytes, its text for an added token that is
 * not special (added tokens decode as their content), or nothing for a special one (skipped). Undefined if any
 * id in the vocabulary's range is missing or uses a character outside the byte alphabet: then it is not
 * plain byte-level, and the generic detokenizer serves.
 */
export function byteLevelPieces(tokenizer: Tokenizer): (Uint8Array | string)[] | undefined {
  const added = tokenizer.get_added_tokens_decoder();
  const vocab = tokenizer.get_vocab(true);
  const pieces: (Uint8Array | string)[] = [];
  for (const [token, id] of vocab) {
    const addedToken = added.get(id);
    if (addedToken) {
      pieces[id] = addedToken.special ? new Uint8Array(0) : addedToken.content;
      continue;
    }
    const bytes = byteLevelBytes(token);
    if (!bytes) return undefined;
    pieces[id] = bytes;
  }
  for (let id = 0; id < pieces.length; id++) if (pieces[id] === undefined) return undefined;
  return pieces;
}

/**
 * Incremental detokenization for byte-level BPE: each token stands for fixed bytes, so the text is the UTF-8
 * decoding of their concatenation, and a streaming TextDecoder releases each complete character as its last
 * byte arrives. An added token's text comes after the bytes before it are decoded on their own, as the
 * tokenizer's decoder does.
 */
export class ByteLevelDecoder implements Detokenizer {
  private readonly utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

  constructor(private readonly pieces: readonly (Uint8Array | string)[]) {}

  push(id: number): string {
    const piece = this.pieces[id];
    // An id past the vocabulary (logits padded wider than it) stands for no text.
    if (piece === undefined) return "";
    return typeof piece === "string" ? this.utf8.decode() + piece : this.utf8.decode(piece, { stream: true });
  }

  flush(): string {
    return this.utf8.decode();
  }
}

/**
 * Stop sequences: text that could still turn out to be the start of a stop sequence is held back until that
 * is decided; a completed stop sequence ends the stream, and neither it nor anything after it is released.
 */
export class StopMatcher {
  private held = "";

  constructor(private readonly stops: readonly string[]) {}

  /** Adds text; returns what may be released now and whether a stop sequence completed. */
  push(text: string): { text: string; stopped: boolean } {
    if (this.stops.length === 0) return { text, stopped: false };
    const pending = this.held + text;
    let cut = -1;
    for (const stop of this.stops) {
      const at = pending.indexOf(stop);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.held = "";
      return { text: pending.slice(0, cut), stopped: true };
    }
    // Hold the longest suffix that is a proper prefix of a stop sequence.
    let keep = 0;
    for (const stop of this.stops) {
      for (let k = Math.min(stop.length - 1, pending.length); k > keep; k--) {
        if (pending.endsWith(stop.slice(0, k))) {
          keep = k;
          break;
        }
      }
    }
    this.held = pending.slice(pending.length - keep);
    return { text: pending.slice(0, pending.length - keep), stopped: false };
  }

  /** The stream ended without a stop sequence: what was held back is ordinary text after all. */
  flush(): string {
    const held = this.held;
    this.held = "";
    return held;
  }
}
