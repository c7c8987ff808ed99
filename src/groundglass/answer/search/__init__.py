"""Search providers behind one small interface (web search lands with issue 3)."""
