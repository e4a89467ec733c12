"""The stable endpoint of a `local` target: one router process in front of its versions' servers."""
