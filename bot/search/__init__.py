"""Passages -> embeddings -> index -> ranked hits -> reply text: the model, the FAISS and
keyword indexes, retrieval with its gate, linked questions and the answer's wording."""
