"""Client APIs besides the Anthropic Messages API, each translated onto `forward_to_provider`.

May import: routing, translation and the primitives.
"""
