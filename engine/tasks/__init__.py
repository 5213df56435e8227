"""Generation tasks: one module per task (prompt, stop, parse, validate, score, sampling, options).

``registry.get_task(name)`` returns the task object; ``registry.TASKS`` lists them.
"""
