# cmake -DINPUT=file -DOUTPUT=file.c -DSYMBOL=name -P EmbedText.cmake: write a C source defining
# `const char SYMBOL[]` with INPUT's bytes, so data files (stage option schemas) stay plain files
# in the tree and are compiled in, never hand-escaped into C literals.
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" n)
set(body "")
set(i 0)
while(i LESS n)
  string(SUBSTRING "${hex}" ${i} 2 byte)
  string(APPEND body "0x${byte},")
  math(EXPR i "${i} + 2")
  math(EXPR col "${i} % 32")
  if(col EQUAL 0)
    string(APPEND body "\n")
  endif()
endwhile()
file(WRITE "${OUTPUT}.tmp" "/* Generated from ${INPUT} by cmake/EmbedText.cmake; do not edit. */\n"
  "const char ${SYMBOL}[] = {\n${body}0x00};\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
