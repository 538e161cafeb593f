"""The suite's checks, one theme per module. Importing a module registers its checks."""
