"""HTTP handlers by subject; thin: parse (typed, limited) → store → publish after commit → respond."""
