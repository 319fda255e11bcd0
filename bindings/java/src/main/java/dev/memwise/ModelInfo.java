package dev.memwise;

import java.nio.charset.StandardCharsets;

/** What {@code mw_model_info_get} reports about a model. Per-layer counts are layer 0's. */
public final class ModelInfo {
    private final String architecture;
    private final String name;
    private final String tokenizerModel;
    private final String tokenizerPre;
    private final String chatTemplate;
    private final String fileType;
    private final int ggufVersion;
    private final int nVocab;
    private final int nCtxTrain;
    private final int nEmbd;
    private final int nLayer;
    private final int nHead;
    private final int nHeadKv;
    private final int nFf;
    private final int headDim;
    private final int bosToken;
    private final int eosToken;
    private final int eotToken;
    private final int kvBytesPerToken;
    private final boolean addBos;
    private final long nParams;
    private final long fileBytes;
    private final long weightBytes;

    /** Called by the JNI glue; the order of the values is the glue's (memwise_jni.c, n_model_info). */
    ModelInfo(byte[][] s, int[] i, long[] l) {
        architecture = utf8(s[0]);
        name = utf8(s[1]);
        tokenizerModel = utf8(s[2]);
        tokenizerPre = utf8(s[3]);
        chatTemplate = utf8(s[4]);
        fileType = utf8(s[5]);
        ggufVersion = i[0];
        nVocab = i[1];
        nCtxTrain = i[2];
        nEmbd = i[3];
        nLayer = i[4];
        nHead = i[5];
        nHeadKv = i[6];
        nFf = i[7];
        headDim = i[8];
        bosToken = i[9];
        eosToken = i[10];
        eotToken = i[11];
        kvBytesPerToken = i[12];
        addBos = i[13] != 0;
        nParams = l[0];
        fileBytes = l[1];
        weightBytes = l[2];
    }

    private static String utf8(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }

    /** "llama", "qwen2", ... */
    public String architecture() { return architecture; }
    /** general.name, or "". */
    public String name() { return name; }
    /** "gpt2" (byte-level BPE) or "llama" (SentencePiece). */
    public String tokenizerModel() { return tokenizerModel; }
    /** The BPE pre-tokenizer ("smollm", "llama-bpe"), or "". */
    public String tokenizerPre() { return tokenizerPre; }
    /** The recognised chat template ("chatml", "llama2", "llama3", "mistral"), or "". */
    public String chatTemplate() { return chatTemplate; }
    /** The dominant weight type, e.g. "Q4_1". */
    public String fileType() { return fileType; }
    public int ggufVersion() { return ggufVersion; }
    public int nVocab() { return nVocab; }
    /** The context length the model was trained for. */
    public int nCtxTrain() { return nCtxTrain; }
    public int nEmbd() { return nEmbd; }
    public int nLayer() { return nLayer; }
    public int nHead() { return nHead; }
    public int nHeadKv() { return nHeadKv; }
    public int nFf() { return nFf; }
    public int headDim() { return headDim; }
    /** -1 when none. */
    public int bosToken() { return bosToken; }
    /** -1 when none. */
    public int eosToken() { return eosToken; }
    /** End-of-turn token, -1 when none. */
    public int eotToken() { return eotToken; }
    /** KV cache bytes one token costs at F16. */
    public int kvBytesPerToken() { return kvBytesPerToken; }
    /** Whether the tokenizer adds BOS to text prompts. */
    public boolean addBos() { return addBos; }
    /** Number of weight elements. */
    public long nParams() { return nParams; }
    public long fileBytes() { return fileBytes; }
    /** Bytes of tensor data. */
    public long weightBytes() { return weightBytes; }

    @Override
    public String toString() {
        return "ModelInfo[" + architecture + " \"" + name + "\", " + fileType + ", " + nLayer + " layers, n_embd "
                + nEmbd + ", vocab " + nVocab + " (" + tokenizerModel + "), ctx " + nCtxTrain + ", " + nParams
                + " params]";
    }
}
