"""Anthropic <-> OpenAI translation (Chat Completions and Responses), pure (no network, no Flask), one module per direction.

Provider side (an Anthropic request served by an OpenAI-compatible backend):
    messages_to_chat_request   Messages request  -> Chat Completions request
    chat_to_messages_answer    Chat Completions answer -> Anthropic message (and errors)
    chat_to_messages_stream    Chat Completions chunks -> Anthropic stream events
Client side (an OpenAI client served by any backend):
    chat_to_messages_request   Chat Completions request -> Messages request
    messages_to_chat_answer    Anthropic message / stream events -> Chat Completions answer / chunks
Client side, the Responses API (Codex CLI):
    responses_to_messages_request   Responses request -> Messages request (with responses_input, responses_tools)
    messages_to_responses_answer    Anthropic message -> `response` object (and the error shapes)
    messages_to_responses_stream    Anthropic stream events -> Responses stream events

May import: the primitives (errors, sse) and nothing else of the project.
"""
