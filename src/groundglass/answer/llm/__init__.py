"""Language-model runtimes behind one interface (see ``base.LLM``)."""
