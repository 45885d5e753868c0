"""Where vehicles went and will go: a tag's trail (trail.py), the movement model that predicts
the next reader (movement.py, prediction.py), the bulk reads of the alert timers (history.py),
the police's queries (queries.py: trails, who passed here, seen together) and the geometry they
share (geo.py).

Importing the package loads only this docstring: take what you need from its modules.
"""
