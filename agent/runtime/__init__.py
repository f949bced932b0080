"""The local-model runtime: the model store, ``transformers serve``, the OpenAI-protocol
client, batched in-process generation and the query writer."""
