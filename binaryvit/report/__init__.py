"""What `binaryvit report` computes and draws from an output folder: resources by op class,
cycles per block, the integer model's accuracy against its stream width, and the fit per
board. The command (``binaryvit.commands.report``) writes the Markdown around them."""
