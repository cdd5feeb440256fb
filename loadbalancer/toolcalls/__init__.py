"""Text tool calls: what open models write as text becomes real tool calls.

`parser` finds calls in text (complete or streamed, with equal results at every cut), using
detectors grouped by model family; `arguments` repairs and coerces arguments to the tool's
schema; `rewrite` applies the parser to Anthropic messages and event streams.

Pure: no network, no Flask. May import the primitives and nothing else of the project.
"""
