"""The write side: commands, sign-in and the relay to Kafka."""
