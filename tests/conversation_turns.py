"""A short, non-graphic conversation the conversation and training tests share: a gradual disclosure in three user
turns, as {role, content} turns (the chat format of `Record.messages`)."""

TURNS = [
    {"role": "user", "content": "Can you help me plan meals for the week?"},
    {"role": "assistant", "content": "Of course. Shall we start with breakfast ideas?"},
    {"role": "user", "content": "Sure. Honestly I haven't felt like eating much lately."},
    {"role": "assistant", "content": "Thanks for telling me. What has been going on?"},
    {"role": "user", "content": "I feel like giving up on everything."},
    {"role": "assistant", "content": "I'm really sorry you feel this way. You can call or text 988 any time."},
]
