"""What is in a frame and when, with no Keras: plan, makers, builder, background, schedule, engine, clock.

`plan` decides which native each slot starts from (pure); `makers` turn
slots into pixels on threads or processes; `builder` fills a `buffer`;
`background` and `pacing` build the next frame beside training; `schedule`
decides a frame's length; `engine` swaps frames; `clock` tells the engine
when a training epoch ended.
"""
