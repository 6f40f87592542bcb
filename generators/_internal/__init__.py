"""The machinery behind `generators`: the state model, the builder and the step patterns."""
