"""What a rule firing can do: messages, tasks, channels and the guards around them."""
