"""The compiler: frontend -> normalize -> activity -> reverse -> emit.

Each pass is its own module; dependencies point down the pipeline.
"""
