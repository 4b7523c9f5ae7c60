"""pushgrowth: a self-learning growth engine for recurring push campaigns."""
